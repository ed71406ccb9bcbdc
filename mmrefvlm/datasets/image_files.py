"""Faults of the image files a VT-Instruct record names: missing, empty, not an image, truncated,
or of another size than the record's ``width``/``height``.

One set of checks serves the validator (:func:`check_image_file`, a header read or a full decode)
and the loading transform (:func:`check_image_bytes` and :func:`size_problem` around its own
decode), so both name a fault in the same words. A problem is a phrase that follows the path:
``data/coco/x.jpg is truncated (no JPEG end-of-image marker)``.
"""
import io
import os
import os.path as osp
from typing import Optional, Tuple

from PIL import Image, UnidentifiedImageError

JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
PNG_START, PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND'
# A PNG ends with its IEND chunk: 4 length bytes, the type, 4 CRC bytes.
PNG_END_OFFSET = 8
# Padding some writers leave after a JPEG's end-of-image marker.
JPEG_PADDING = b'\x00\r\n '


class ImageFileError(ValueError):
    """An image file that cannot be used as the record says.

    A ``ValueError``, so the dataset's ``on_bad_record`` policy applies to it as to any other
    bad record.

    Args:
        path: the file.
        problem: what is wrong, a phrase that follows the path (see :func:`check_image_file`).
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f'{path} {problem}')
        self.path = path
        self.problem = problem


def check_image_bytes(data: bytes) -> Optional[str]:
    """The problem of an encoded image that a decoder may not report: empty or truncated.

    OpenCV decodes a truncated JPEG without an error (the missing rows come back grey), so a
    JPEG must end with its end-of-image marker and a PNG with its ``IEND`` chunk.

    Returns:
        ``None`` when the bytes look whole, else the problem.
    """
    if not data:
        return 'is empty (0 bytes)'
    if data.startswith(JPEG_START) and not data.rstrip(JPEG_PADDING).endswith(JPEG_END):
        return 'is truncated (no JPEG end-of-image marker)'
    if data.startswith(PNG_START) and data[-PNG_END_OFFSET:-4] != PNG_END:
        return 'is truncated (no PNG IEND chunk)'
    return None


def size_problem(size: Tuple[int, int], expected: Tuple[int, int]) -> Optional[str]:
    """The problem of an image of ``size`` (width, height) where the record says ``expected``."""
    if tuple(size) == tuple(expected):
        return None
    return (f'is {size[0]}x{size[1]} but the record says {expected[0]}x{expected[1]} '
            '(width x height)')


def check_image_file(path: str, expected_size: Optional[Tuple[int, int]],
                     decode: bool = False) -> Optional[str]:
    """The problem of the image file at ``path``, or ``None`` when it is usable.

    Args:
        path: the file.
        expected_size: ``(width, height)`` from the record; ``None`` skips the size check.
        decode: decode every pixel (finds corrupt and truncated files); otherwise only the
            header is read (finds missing, empty, non-image and mis-sized files, cheaply).
    """
    if not osp.isfile(path):
        return 'does not exist'
    if os.stat(path).st_size == 0:
        return 'is empty (0 bytes)'
    try:
        if decode:
            with open(path, 'rb') as f:
                data = f.read()
            problem = check_image_bytes(data)
            if problem is not None:
                return problem
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                size = image.size
        else:
            with Image.open(path) as image:
                size = image.size
    except UnidentifiedImageError:
        return 'cannot be decoded as an image (unknown format)'
    except (OSError, SyntaxError, ValueError) as error:
        return f'cannot be decoded as an image ({error})'
    return None if expected_size is None else size_problem(size, expected_size)
