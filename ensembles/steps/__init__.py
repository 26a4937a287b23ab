"""The built-in pipeline steps, one module per topic; each registers its steps in
:data:`ensembles.pipeline.STEPS` on import (the registry imports every module here on first use, so
a new step is one new module)."""
