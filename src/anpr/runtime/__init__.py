"""Shared service runtime: settings, logging, the gRPC server, interceptors, auth, metrics and database access.

Every service (ingest, recognize, hotlist) builds on this package so that cross-cutting behaviour is written once.
"""
