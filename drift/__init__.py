"""ndk-drift: Langevin ensembles of wide networks, the Neural Dynamical Kernel theory,
and representational drift, all in one xarray data format."""

__version__ = "0.1.0"

from drift.config import RunConfig, load_config  # noqa: E402
from drift.simulate import simulate  # noqa: E402

__all__ = ["RunConfig", "load_config", "simulate", "__version__"]
