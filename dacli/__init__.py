"""dacli — variational data assimilation from the command line.

The public Python API lives in the sub-packages (``dacli.config``, ``dacli.run``,
``dacli.models``, ...). Importing ``dacli`` itself is cheap: JAX is imported only by the
modules that compute.
"""

__version__ = "0.1.0"
