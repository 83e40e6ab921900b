"""Data-parallel phases through skorch's :class:`~skorch.hf.AccelerateMixin`.

A phase whose net takes skorch's ordinary training step (forward, loss,
``accelerator.backward``, optimiser step; ``net_class.data_parallel``) is
trained by a subclass of its net with the mixin: the module is wrapped for
distributed data parallelism and each process trains on its share of every
batch (:class:`~skdeepclust._training.SliceIterator`'s ``shard``), the
gradients averaged across processes. Every process walks the same seeded
permutation, so the shares partition each batch. Once the phase is over the
net goes back to its own class without the accelerator, so a fitted
estimator holds, and pickles, the same nets as one trained without it.

Imported only when an estimator is given an ``accelerator`` (skorch's
``hf`` module is slow to import).
"""

from __future__ import annotations

from functools import cache

import torch
from skorch.hf import AccelerateMixin

__all__ = ["data_parallel_class", "detach_accelerator", "shared_seed"]

#: What AccelerateMixin adds to a net's attributes; removed when the phase is over.
_MIXIN_ATTRIBUTES = ("accelerator", "unwrap_after_train", "_wrapped_with_accelerator",
                     "callbacks__print_log__sink")


def _has_trainable_parameters(obj) -> bool:
    return isinstance(obj, torch.nn.Module) and any(p.requires_grad for p in obj.parameters())


class _DataParallelMixin(AccelerateMixin):
    """AccelerateMixin, sharding the package's slicing iterator by process."""

    def _initialize_accelerator(self):
        # DistributedDataParallel refuses a module without trainable parameters, which is
        # what the package's criteria are: prepare only the criteria that have some.
        criteria = self._criteria
        self._criteria = [name for name in criteria
                          if _has_trainable_parameters(getattr(self, name + "_", None))]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def get_iterator(self, dataset, training=False):
        iterator = super().get_iterator(dataset, training=training)
        processes = self.accelerator.num_processes
        if training and processes > 1:
            # Accelerator.prepare returns the package's iterator unchanged: it shards here.
            iterator.shard = (self.accelerator.process_index, processes)
        return iterator


@cache
def data_parallel_class(net_class: type) -> type:
    """``net_class`` with :class:`~skorch.hf.AccelerateMixin` (one class per net class)."""
    return type(f"DataParallel{net_class.__name__}", (_DataParallelMixin, net_class), {})


def detach_accelerator(net, net_class: type) -> None:
    """Make a data-parallel net a plain ``net_class`` net again, without its accelerator.

    The modules are unwrapped, the mixin's attributes dropped and the
    callbacks rebuilt, so the net pickles and trains further as one that
    never had an accelerator.
    """
    net._unwrap_accelerator()
    for name in _MIXIN_ATTRIBUTES:
        vars(net).pop(name, None)
    net._params_to_validate.discard("callbacks__print_log__sink")
    net.__class__ = net_class
    # The device the accelerator placed the modules on, as a net without it would say.
    net.device = str(next(net.module_.parameters()).device)
    net.callbacks = None
    net.initialize_callbacks()


def shared_seed(seed: int, accelerator) -> int:
    """The main process's ``seed`` on every process (they must draw the same shuffles)."""
    if accelerator.num_processes == 1:
        return seed
    from accelerate.utils import broadcast_object_list

    return int(broadcast_object_list([seed], from_process=0)[0])
