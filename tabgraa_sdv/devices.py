"""Where the model runs: one device, or one device per process under ``accelerate launch``.

Launched with ``accelerate launch`` (or ``torchrun``) on N GPUs, every process holds a full
copy of the model. Training is data parallel: each process takes a contiguous 1/N of every
global batch, its gradient of (its share of the summed loss) / (tokens in the global batch) is
summed over processes, and so every process takes the same optimizer step as one process
would on the whole batch. Sampling splits the rows between processes, each with its own random
stream, and gathers them in process order, so every process returns the same rows. Outside
such a launch every helper here is the identity, and single-process code pays nothing.
"""

import os

import numpy as np
import torch


def launched_processes():
    """Number of processes of the current ``accelerate launch`` / ``torchrun`` (1 outside)."""
    try:
        return max(1, int(os.environ.get('WORLD_SIZE', '1')))
    except ValueError:
        return 1


def _accelerate_state(device):
    """accelerate's process state (sets up the process group on first use)."""
    from accelerate import PartialState

    cpu = (device is not None and torch.device(device).type == 'cpu') or \
        not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def resolve_device(device):
    """``None`` picks CUDA, then MPS, then CPU; under a multi-process launch, this process's
    GPU (``cuda:LOCAL_RANK``) unless ``device='cpu'``."""
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"Invalid device {device!r}: use None, 'cpu', 'cuda' or 'mps'.") from error
    if launched_processes() > 1 and (device is None or device.type == 'cuda'):
        return _accelerate_state(device).device
    if device is not None:
        return device
    if torch.cuda.is_available():
        return torch.device('cuda')
    if getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


def make_generator(random_state, device):
    """A torch generator on ``device`` from an int seed, a generator or SDV's
    ``(np.random.RandomState, torch.Generator)`` pair (its state is copied), or ``None``."""
    generator = torch.Generator(device=device)
    if random_state is None:
        generator.seed()
    elif isinstance(random_state, torch.Generator):
        generator.set_state(random_state.get_state())
    elif isinstance(random_state, tuple):  # SDV passes (np.random.RandomState, torch.Generator)
        generator.set_state(random_state[1].get_state())
    else:
        generator.manual_seed(int(random_state))
    return generator


def generator_state(generator):
    """A picklable ``(device type, state)`` of a torch generator (``None`` for ``None``)."""
    return None if generator is None else (generator.device.type, generator.get_state())


def restore_generator(saved, device):
    """The generator on ``device`` that :func:`generator_state` saved, or ``None`` (sampling
    then starts again from the seed) when it was saved on another kind of device: a CUDA
    generator's state (Philox seed and offset) means nothing to the CPU's Mersenne Twister.
    A bare state tensor is a pickle from before the device type was kept."""
    if saved is None:
        return None
    kind, state = saved if isinstance(saved, tuple) else ('cpu', saved)
    if kind != device.type:
        return None
    generator = torch.Generator(device=device)
    try:
        generator.set_state(state)
    except RuntimeError:  # an old pickle's GPU state taken for a CPU one
        return None
    return generator


class DataParallel:
    """This process's share of the work (see the module docstring). ``rank`` 0 of 1 outside a
    multi-process launch, where every method is the identity."""

    def __init__(self, device):
        self.rank, self.size = 0, 1
        if launched_processes() > 1:
            state = _accelerate_state(device)
            self.rank, self.size = state.process_index, state.num_processes

    @property
    def active(self):
        return self.size > 1

    @property
    def is_main(self):
        return self.rank == 0

    def shard(self, n):
        """This process's contiguous slice of ``n`` items."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    def sum(self, value):
        """A number summed over processes (a Python float)."""
        if not self.active:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor)
        return float(tensor.item())

    def sum_gradients(self, parameters):
        """Sum the gradients of ``parameters`` over processes (missing ones count as zero), in
        one flat buffer so that there is one collective call per step."""
        if not self.active:
            return
        import torch.distributed as dist

        parameters = [p for p in parameters if p.requires_grad]
        for p in parameters:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in parameters])
        dist.all_reduce(flat)
        offset = 0
        for p in parameters:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
            offset += p.numel()

    def barrier(self):
        """Wait until every process gets here."""
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def broadcast_module(self, module):
        """Copy process 0's parameters and buffers into every process's ``module``."""
        if not self.active:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def broadcast_object(self, value):
        """Process 0's ``value`` (any picklable object), on every process."""
        if not self.active:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self._comm_device())
        return box[0]

    def split_generator(self, generator):
        """A generator for this process's share of a sampling call. Every process draws the same
        base seed from ``generator`` (they stay in step) and offsets it by its rank."""
        if not self.active:
            return generator
        base = int(torch.randint(0, 2 ** 62, (1,), generator=generator,
                                 device=generator.device).item())
        return torch.Generator(device=generator.device).manual_seed(base + self.rank)

    def sample(self, num_rows, generator, draw):
        """``draw(rows, generator)`` returns token rows for ``rows``, a slice of
        ``range(num_rows)``: here called once for this process's share, and the shares gathered."""
        if not self.active:
            return draw(slice(0, num_rows), generator)
        return self.gather_rows(draw(self.shard(num_rows), self.split_generator(generator)))

    def gather_rows(self, array):
        """Concatenate every process's rows (numpy arrays) in process order, on every process."""
        if not self.active:
            return array
        import torch.distributed as dist

        parts = [None] * self.size
        dist.all_gather_object(parts, np.asarray(array))
        return np.concatenate(parts, axis=0)

    def _comm_device(self):
        import torch.distributed as dist

        return torch.device('cuda', torch.cuda.current_device()) \
            if dist.get_backend() == 'nccl' else torch.device('cpu')
