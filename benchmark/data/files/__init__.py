"""Datasets kept as image files: their official lists (listing.py), batch readers and the
tensor-like view over them (streaming.py), memory-mapped packs (pack.py), and the choice between
a pack, memory and a stream when a run loads one (materialise.py)."""
from benchmark.data.files.listing import Listing, Split, check_files
from benchmark.data.files.materialise import decode_all, materialise
from benchmark.data.files.pack import Pack, check_pack, find_pack, pack_name, write_pack
from benchmark.data.files.streaming import (FileReader, PackedReader, StreamedImages, decode_mode,
                                            fits_in_memory, take)

__all__ = ["FileReader", "Listing", "Pack", "PackedReader", "Split", "StreamedImages", "check_files",
           "check_pack", "decode_all", "decode_mode", "find_pack", "fits_in_memory", "materialise",
           "pack_name", "take", "write_pack"]
