"""Image files read in DataLoader workers: decoded, resized or randomly cropped, batched as uint8.

Nothing is held in memory but the file names: each image is read when a worker loads its batch (from the
files, or from the cache of resized images in ``image_cache.py``), so memory does not grow with the number
of images, and under DDP each process reads only the images of its share.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler, get_worker_info
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2
from torchvision.transforms.v2 import Transform

# torchvision decodes these, resize included, about twice as fast as Pillow (256-pixel JPEGs to 224: 0.31
# ms against 0.61 ms on one core); Pillow decodes the others (BMP, TIFF), and reads every file's header
# first, which refuses decompression bombs before a pixel is decoded. (torchvision 0.29 deprecates its
# decoders for TorchCodec's, which does not yet declare the torch release it needs.)
TORCHVISION_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # those of folder.EXTENSIONS, no others tried
COLOUR_ONLY = {"GIF", "WEBP"}  # torchvision decodes them in colour whatever the mode: made grey after
MODES = {1: (ImageReadMode.GRAY, "L"), 3: (ImageReadMode.RGB, "RGB")}  # torchvision's and Pillow's names


class UnreadableImage(MisconfigurationException):
    """An image file that cannot be read, in one line that names it.

    Raised in a DataLoader worker, it is raised again in the main process with the worker's traceback as
    its message; the last line of that traceback is the message kept.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message.rstrip().rpartition(f"{type(self).__name__}: ")[2])


def read_image(path: Path, channels: int) -> Tensor:
    """One image file as ``(channels, height, width)`` uint8 pixels, at its own size.

    An animation gives its first frame; EXIF orientation is applied. A file that cannot be read raises an
    :class:`UnreadableImage` that names it.
    """
    name = repr(str(path))  # quoted: a line break in a file name stays inside the one-line error
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image:  # the header: format and size
            if image.format in TORCHVISION_FORMATS:
                buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
                mode = MODES[3 if image.format in COLOUR_ONLY else channels][0]
                pixels = decode_image(buffer, mode, apply_exif_orientation=True)
            else:
                pixels = torch.from_numpy(np.array(image.convert(MODES[channels][1])))
                pixels = pixels.view(image.height, image.width, -1).permute(2, 0, 1)
    except UnidentifiedImageError as error:  # its message repeats the path and says nothing more
        raise UnreadableImage(f"{name}: not an image, or too damaged to tell") from error
    except Image.DecompressionBombError as error:
        raise UnreadableImage(
            f"{name}: refused, {error} (if the image is genuine, raise PIL.Image.MAX_IMAGE_PIXELS)"
        ) from error
    # Pillow and torchvision report a damaged file as any of these, depending on the format and the damage.
    except (OSError, SyntaxError, ValueError, RuntimeError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UnreadableImage(f"{name}: cannot be read as an image ({reason})") from error
    if pixels.ndim == 4:
        pixels = pixels[0]
    pixels = v2.functional.to_dtype(pixels, torch.uint8, scale=True)  # 16-bit PNGs decode to uint16
    return v2.functional.rgb_to_grayscale(pixels) if len(pixels) != channels else pixels


def transforms(size: tuple[int, int], crop_scale: tuple[float, float] | None, flip: bool) -> Transform:
    """What turns an image of any size into a sample of ``size``.

    A random crop of ``crop_scale`` of its area resized to ``size`` (or all of it, resized), and a
    horizontal flip half the time where ``flip``.
    """
    resize = v2.Resize(size, antialias=True)
    steps = [v2.RandomResizedCrop(size, scale=crop_scale, antialias=True) if crop_scale else resize]
    return v2.Compose([*steps, v2.RandomHorizontalFlip()] if flip else steps)


class ImageFiles(Dataset):
    """The images of one split, read when they are asked for and batched as uint8 ``(images, labels)``.

    Args:
        root: The folder the file names are relative to.
        files: Every file name of the data set, relative to ``root``: one numpy array of bytes rather than
            a Python object each, so that forked workers share its memory instead of copying it.
        labels: The class index of every file.
        rows: The rows of ``files`` in this split.
        shape: ``(channels, height, width)`` of a sample.
        transform: Applied to each image, from its file or from the cache.
        cache: The ``.npy`` file of all the images already resized to ``shape``, or None to decode files.
        random: Whether ``transform`` draws random choices (augments); given a seed with an image's index
            (the training split's sampler gives one, :class:`EpochShuffle`), it draws them from that seed.
    """

    def __init__(
        self,
        root: Path,
        files: np.ndarray,
        labels: Tensor,
        rows: Tensor,
        shape: tuple[int, int, int],
        transform: Transform,
        cache: Path | None = None,
        random: bool = False,
    ) -> None:
        self.root, self.files, self.labels, self.rows = root, files, labels, rows
        self.shape, self.transform, self.cache, self.random = shape, transform, cache, random
        self._cache_file: tuple[int, int, int] | None = None  # (process id, descriptor, data offset)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def sample_ids(self) -> list[str]:
        """Each sample's file, relative to ``root`` (``predict`` writes it beside the prediction)."""
        return [os.fsdecode(self.files[row]) for row in self.rows.tolist()]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
        images, labels = self.__getitems__([key])
        return images[0], labels[0]

    def __getitems__(self, keys: list[int | tuple[int, int]]) -> tuple[Tensor, Tensor]:
        images = torch.empty(len(keys), *self.shape, dtype=torch.uint8)
        if get_worker_info() is not None:  # in shared memory from the start, as torch's own batches are
            images.share_memory_()
        rows = []
        for k, key in enumerate(keys):
            index, seed = key if isinstance(key, tuple) else (key, None)
            rows.append(int(self.rows[index]))
            image = self.read(rows[-1])
            if self.random:
                images[k] = self.transform(image) if seed is None else self.seeded(image, seed)
            else:  # an image from the cache is resized already
                images[k] = image if image.shape == self.shape else self.transform(image)
        return images, self.labels[rows]

    def seeded(self, image: Tensor, seed: int) -> Tensor:
        """``transform(image)`` with torch's generator seeded by ``seed``, and left as it was."""
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(seed)
        try:
            return self.transform(image)
        finally:
            generator.set_state(state)

    def read(self, row: int) -> Tensor:
        """The pixels of image ``row``: at its own size from its file, or resized from the cache."""
        if self.cache is None:
            return read_image(self.root / os.fsdecode(self.files[row]), self.shape[0])
        _, descriptor, offset = self.cache_file()
        size = int(np.prod(self.shape))
        pixels = os.pread(descriptor, size, offset + row * size)
        return torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(self.shape)

    def cache_file(self) -> tuple[int, int, int]:
        """This process's descriptor of the cache file, and where its pixels start.

        The file is read with ``pread`` rather than mapped: the images pass through the page cache, shared
        by every process, and never count towards a process's memory.
        """
        if self._cache_file is None or self._cache_file[0] != os.getpid():
            with open(self.cache, "rb") as file:
                np.lib.format.read_magic(file)
                np.lib.format.read_array_header_1_0(file)
                offset = file.tell()
            self._cache_file = (os.getpid(), os.open(self.cache, os.O_RDONLY), offset)
        return self._cache_file

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache_file": None}  # a worker opens its own


class EpochShuffle(DistributedSampler):
    """The training order of each epoch, and a seed for each image's augmentation, from (seed, epoch).

    An image is then augmented alike whichever worker loads it, whether the workers persist from epoch to
    epoch, and in a run resumed mid-epoch. A DistributedSampler, so that Lightning keeps it under DDP and
    sets its epoch: each process gets its own share of every epoch (and one process, without DDP, all).
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        processes = torch.distributed.get_world_size() if distributed else 1
        rank = torch.distributed.get_rank() if distributed else 0
        super().__init__(dataset, num_replicas=processes, rank=rank, shuffle=True, seed=seed)

    def __iter__(self):
        seeds = np.random.SeedSequence([self.seed, self.epoch]).generate_state(len(self.dataset), np.uint64)
        return ((index, int(seeds[index])) for index in super().__iter__())
