"""Datasets as float image tensors in [0, 1], shape (N, C, H, W)."""
from .base import ImageDataset, unpaired
from .registry import DatasetInfo, default_data_dir, get_info, list_datasets, load_dataset, register
from .transforms import binarize, gaussian_noise, masking_noise, salt_pepper_noise, corrupt

__all__ = [
    "ImageDataset", "unpaired", "DatasetInfo", "default_data_dir", "get_info", "list_datasets", "load_dataset",
    "register", "binarize", "gaussian_noise", "masking_noise", "salt_pepper_noise", "corrupt",
]
