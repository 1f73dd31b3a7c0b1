"""Window packing and the observation operator (the observation records and readers are in
dacli.io)."""
