"""Config records -> engine objects. The only layer that maps names to classes.

* :mod:`.registry` — the names a configuration may use and each method kind's capabilities;
  no JAX, so validating a configuration (and ``dacli --help``) stays fast.
* :mod:`.factories` — one factory per registered name, from its configuration record.
* :mod:`.choices` — what "auto" means here, each choice with its reason.
* :mod:`.dynamics`, :mod:`.network`, :mod:`.problem` — the model, 4DVarNet, and all a run needs.
"""
