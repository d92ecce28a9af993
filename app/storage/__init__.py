from app.storage.base import Storage, StorageError
from app.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageError"]
