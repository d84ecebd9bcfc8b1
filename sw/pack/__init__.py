"""Weight packing into the formats the hardware reads (SPEC §2 and §4) and their memory images."""

from sw.pack.eie import EIEPacked, PEImage, pack_eie, unpack_eie, validate_pe

__all__ = ["EIEPacked", "PEImage", "pack_eie", "unpack_eie", "validate_pe"]
