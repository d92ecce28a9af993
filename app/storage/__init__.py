from app.storage.local import LocalStorage, StorageError

__all__ = ["LocalStorage", "StorageError"]
