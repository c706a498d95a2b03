"""``anpr cameras add|list|remove``: register, list and delete cameras at ingest (role ingest-admin)."""

from __future__ import annotations

import argparse

from anpr.api.common.v1 import geo_pb2, paging_pb2
from anpr.api.ingest.v1 import camera_pb2, ingest_service_pb2_grpc
from anpr.api.ingest.v1 import ingest_service_pb2 as pb
from anpr.cli.calls import channel, metadata, print_message, run_command
from anpr.cli.profile import add_connection_arguments, resolve

ROLE = "ingest-admin"
KINDS = ("fixed", "mobile", "dash", "body")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``anpr cameras``."""
    commands = parser.add_subparsers(dest="cameras_command", metavar="COMMAND", required=True)
    add = commands.add_parser("add", help="register a camera")
    add.add_argument("camera_id", help="camera id (letters, digits, '.', '_', '-')")
    add.add_argument("--kind", choices=KINDS, default="fixed", help="kind of camera (default: fixed)")
    add.add_argument("--name", default="", help="display name")
    add.add_argument(
        "--location",
        default=None,
        metavar="LAT,LON",
        help="position of a fixed camera; --location=-33.92,18.42 for a negative latitude",
    )
    add.add_argument("--owner-unit", default="", help="unit that owns the camera")
    add.add_argument("--principal", default=None, help="identity of the camera's token (label principal)")
    listing = commands.add_parser("list", help="list cameras, one JSON object per line")
    listing.add_argument("--include-disabled", action="store_true", help="list disabled cameras too")
    remove = commands.add_parser("remove", help="delete a camera (its pulled sources stop)")
    remove.add_argument("camera_id")
    for command in (add, listing, remove):
        add_connection_arguments(command)


def _camera(args: argparse.Namespace) -> camera_pb2.Camera:
    camera = camera_pb2.Camera(
        camera_id=args.camera_id,
        kind=camera_pb2.CameraKind.Value(f"CAMERA_KIND_{args.kind.upper()}"),
        display_name=args.name,
        owner_unit=args.owner_unit,
    )
    if args.principal:
        camera.labels["principal"] = args.principal
    if args.location:
        try:
            latitude, longitude = (float(part) for part in args.location.split(","))
        except ValueError:
            raise ValueError(f"--location {args.location!r}: give LAT,LON in degrees, e.g. -33.92,18.42") from None
        camera.location.CopyFrom(geo_pb2.GeoPoint(latitude=latitude, longitude=longitude))
    elif args.kind != "fixed":  # a fixed camera without --location is refused by the service, with its reason
        camera.moving.SetInParent()
    return camera


async def _run(args: argparse.Namespace) -> None:
    target = resolve(args, "ingest", ROLE)
    async with channel(target) as open_channel:
        stub = ingest_service_pb2_grpc.IngestServiceStub(open_channel)
        if args.cameras_command == "add":
            added = await stub.RegisterCamera(pb.RegisterCameraRequest(camera=_camera(args)), metadata=metadata(target))
            print_message(added.camera)
        elif args.cameras_command == "list":
            page_token = ""
            while True:
                request = pb.ListCamerasRequest(
                    page=paging_pb2.PageRequest(page_token=page_token), include_disabled=args.include_disabled
                )
                page = await stub.ListCameras(request, metadata=metadata(target))
                for camera in page.cameras:
                    print_message(camera)
                page_token = page.page.next_page_token
                if not page_token:
                    break
        else:
            removed = await stub.DeleteCamera(
                pb.DeleteCameraRequest(camera_id=args.camera_id), metadata=metadata(target)
            )
            print_message(removed)


def run(args: argparse.Namespace) -> int:
    """Run ``anpr cameras ...``."""
    return run_command(f"cameras {args.cameras_command}", lambda: _run(args))
