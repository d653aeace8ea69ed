"""dlt's listing of a local folder destination's files made to tolerate a file another run deletes meanwhile, so
overlapping runs into one dataset (each its own table) do not fail on dlt's clean-up of saved states (issue #23).

dlt's filesystem destination keeps the saved states of every pipeline of a dataset in one folder
(``<dataset>/_dlt_pipeline_state``, one pipeline per table) and, after each load, deletes the pipeline's states
beyond ``max_state_files`` (100). dlt lists a local folder in two steps, the names (``glob``) and then a ``stat`` of
each; a run of another table of the dataset listing the folder (its sync before a load, its own clean-up after
one) while that clean-up deletes a file met the file gone at its stat and failed its table with
``DestinationUndefinedEntity`` (a sync swallowed it and restored nothing). :func:`tolerate_removed_files` makes
dlt's ``FilesystemClient.list_files_with_prefixes`` list again when a local file vanished between the two steps:
the second listing is what a listing a moment later would have seen.

Why this and not the alternatives: a clean-up deletes only a pipeline's states older than its newest
``max_state_files``; every reader wants the newest state of its own pipeline (dlt's sync, ``newest_stored`` of
files.py, which reads names alone and never stats), and one pipeline's writers are kept apart by the table lock
(locks.py; a dependent table's ``__rereads`` pipeline, rereads.py, is written by its parent's runs too, but a writer
there adds one state at a time, far from 100), so nothing anyone reads is ever deleted: only the listing was fragile. A dataset-wide lock would have
to be held by every listing in every process, around dlt's sync and load steps (which the generic loader runs,
not the destination), and would make runs of different tables wait for each other; taking the clean-up away from
dlt and doing it under our own lock deletes the same files while other runs list, so it races the same way. dlt's
clean-up stays on: old states stay bounded by ``max_state_files``. S3 lists names and sizes in one request, with
no race of this kind.
"""

from __future__ import annotations

import functools
import threading

ATTEMPTS = 10  # listings of one folder, each lost only to another file deleted inside it
_installed = threading.Lock()
_done = False


def tolerate_removed_files() -> None:
    """Install the listing again in dlt's ``FilesystemClient.list_files_with_prefixes`` (once per process)."""
    global _done
    with _installed:
        if _done:
            return
        try:  # dlt's internals: another dlt version without them keeps its own listing, nothing breaks
            from dlt.destinations.impl.filesystem.filesystem import FilesystemClient

            listing = FilesystemClient.list_files_with_prefixes
        except (ImportError, AttributeError):
            _done = True
            return

        @functools.wraps(listing)
        def list_files_with_prefixes(self, table_dir, prefixes):
            attempt = 1
            while True:
                try:
                    return listing(self, table_dir, prefixes)
                except FileNotFoundError:  # local: a name listed, then gone at its stat (remote listings never)
                    if attempt >= ATTEMPTS or "file" not in self.fs_client.protocol:
                        raise
                    attempt += 1

        FilesystemClient.list_files_with_prefixes = list_files_with_prefixes
        _done = True
