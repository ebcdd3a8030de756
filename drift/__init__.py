"""ndk-drift: Langevin ensembles of wide networks, the Neural Dynamical Kernel theory,
and representational drift, all in one xarray data format."""

from drift.config import RunConfig, load_config

__version__ = "0.1.0"

__all__ = ["RunConfig", "load_config", "__version__"]
