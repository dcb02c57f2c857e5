"""Command line of ssd_lib.pretrained: download published SSD300 weights, convert them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..datasets.download import DownloadError
from .convert import convert_file, save_converted
from .models_dir import MODELS_DIR
from ..status import show_status
from .sources import SOURCES, download, source_for_file


def _default_name(path: Path) -> str:
    """The source's name for its published file name, else the file's stem."""
    for source in SOURCES.values():
        if path.name == source.filename:
            return source.name
    return path.name.split(".")[0]


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.pretrained``; returns the exit status (0 or 1)."""
    parser = argparse.ArgumentParser(prog="python -m ssd_lib.pretrained", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download", help="download a published weights file (resumable, checked)")
    fetch.add_argument("name", choices=sorted(SOURCES))
    fetch.add_argument("--to", default=str(MODELS_DIR), help=f"folder (default: {MODELS_DIR})")
    fetch.add_argument("--accept-checksum-mismatch", action="store_true",
                       help="use a file already in the folder although its checksum differs")  # fmt: skip
    convert = commands.add_parser("convert", help="convert a .pth (torchvision) or .h5 (ssd_keras) file")
    convert.add_argument("file", help="the downloaded weights file")
    convert.add_argument("--to", default=str(MODELS_DIR), help=f"folder (default: {MODELS_DIR})")
    convert.add_argument("--name", help="name of the converted model (default: the source's name)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing converted model")
    show_status()
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "download":
            path = download(arguments.name, arguments.to,
                            accept_checksum_mismatch=arguments.accept_checksum_mismatch)  # fmt: skip
            print(f"ready: {path}; next: python -m ssd_lib.pretrained convert {path}")
        else:
            path = Path(arguments.file)
            source = source_for_file(path)
            name = arguments.name or _default_name(path)
            model, config = convert_file(path, source)
            weights = save_converted(model, config, source, name, arguments.to, from_file=path,
                                     overwrite=arguments.overwrite)  # fmt: skip
            print(f"converted {path} -> {weights} ({config.n_classes} classes); load it with "
                  f"ssd_lib.pretrained.load_pretrained({name!r}, {arguments.to!r})")  # fmt: skip
    except (DownloadError, ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
