"""Command line of ssd_lib.datasets: download Pascal VOC, or generate the shapes dataset."""

from __future__ import annotations

import argparse
import sys

from ssd_lib.datasets import download as voc_download
from ssd_lib.datasets import shapes
from ssd_lib.status import show_status


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.datasets``; returns the exit status (0 or 1)."""
    parser = argparse.ArgumentParser(
        prog="python -m ssd_lib.datasets", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download and extract Pascal VOC")
    download.add_argument("names", nargs="+", choices=sorted(voc_download.VOC_ARCHIVES))
    download.add_argument("--to", default="data", help="data folder (default: data)")
    download.add_argument("--keep-archives", action="store_true", help="keep the .tar files")
    download.add_argument("--accept-checksum-mismatch", action="store_true",
                          help="use an archive in <to>/downloads/ whose MD5 differs from the "
                               "official one (e.g. a mirror's copy you trust)")  # fmt: skip
    synthetic = commands.add_parser("shapes", help="generate the synthetic shapes dataset")
    synthetic.add_argument("--to", default="data/shapes", help="output folder")
    synthetic.add_argument("--train", type=int, default=2000, help="training images")
    synthetic.add_argument("--val", type=int, default=500, help="validation images")
    synthetic.add_argument("--seed", type=int, default=0)
    synthetic.add_argument("--image-size", type=int, default=300, help="image side in pixels")
    synthetic.add_argument("--overwrite", action="store_true", help="regenerate even if up to date")
    show_status()
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "download":
            folders = voc_download.download_voc(
                arguments.names, arguments.to, keep_archives=arguments.keep_archives,
                accept_checksum_mismatch=arguments.accept_checksum_mismatch,
            )  # fmt: skip
            for folder in folders:
                print(f"ready: {folder}")
        else:
            root = shapes.make_shapes_dataset(
                arguments.to, arguments.train, arguments.val, arguments.seed,
                image_size=arguments.image_size, overwrite=arguments.overwrite,
            )  # fmt: skip
            print(f"ready: {root} ({arguments.train} train + {arguments.val} val images)")
    except (voc_download.DownloadError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
