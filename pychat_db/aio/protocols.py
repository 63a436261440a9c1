"""The async repositories' protocols: the sync ones (`pychat_db.repositories.protocols`) with `async def`.

They are generated from the sync protocols (`pychat_db.generated.async_protocols`, by `python -m
codegen`): same repositories, method names, arguments, domain models and errors; each method does what
the sync method of the same name documents. tests/test_aio_protocols.py checks that `AsyncDatabase`'s
repositories have them.
"""

from pychat_db.generated import async_protocols
from pychat_db.generated.async_protocols import *  # noqa: F403

__all__ = async_protocols.__all__
