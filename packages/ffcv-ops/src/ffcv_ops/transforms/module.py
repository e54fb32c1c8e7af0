"""Any ``torch.nn.Module`` as a pipeline step: FFCV 1.0's ``ModuleWrapper``."""
from ..operation import Operation


class ModuleWrapper(Operation):
    """Apply ``module`` (a ``torch.nn.Module``, e.g. a torchvision transform) to the batch
    tensor: the step's output is ``module(batch)``.

    A torch operation: put ``ToTensor()`` (and, for image modules that expect
    ``(batch, channels, height, width)``, ``ToTorchImage()``) before it. It runs once per
    batch, on the batch's device; torch is imported only when a ModuleWrapper is made.

    The step declares the data unchanged, as FFCV 1.0's did: a module that changes the
    shape, type or device of the batch works as the pipeline's last step, but operations
    after it would be told the shape from before it.

    >>> import torch
    >>> ModuleWrapper(torch.nn.Identity())
    ModuleWrapper(Identity())
    """

    is_parallel = False
    compiled = False

    def __init__(self, module):
        super().__init__()
        import torch
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"ModuleWrapper wraps a torch.nn.Module, got {module!r} "
                             f"({type(module).__name__})")
        self.module = module

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            raise ValueError(f"ModuleWrapper({self.module!r}) applies a torch module to a torch tensor; "
                             f"it got a numpy batch of shape {previous_state.shape}: put ToTensor() (and, "
                             f"for images, ToTorchImage()) before it")
        return previous_state, None

    def generate_code(self):
        module = self.module

        def apply_module(batch, destination, indices=None, seed=0):
            return module(batch)

        return apply_module

    def __repr__(self):
        return f"ModuleWrapper({self.module!r})"
