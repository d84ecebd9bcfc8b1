"""Weight packing into the formats the hardware reads (docs/spec.md §2 and §4) and their memory images."""

from sw.pack.balance import balanced_row_order
from sw.pack.cutlass24 import cutlass_meta, from_cutlass, to_cutlass
from sw.pack.eie import EIEPacked, PEImage, check_row_order, pack_eie, unpack_eie, validate_pe
from sw.pack.images24 import Images24, read_24_images, write_24_images
from sw.pack.sparse24 import Packed24, check_24, check_int8, check_meta, mask_24, mask_nm, pack_24, unpack_24

__all__ = [
    "EIEPacked", "PEImage", "pack_eie", "unpack_eie", "validate_pe", "balanced_row_order", "check_row_order",
    "Packed24", "mask_nm", "mask_24", "pack_24", "unpack_24", "check_24", "check_meta", "check_int8",
    "to_cutlass", "from_cutlass", "cutlass_meta", "Images24", "write_24_images", "read_24_images",
]
