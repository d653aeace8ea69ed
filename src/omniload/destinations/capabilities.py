"""A dlt destination whose capabilities do not resolve its configuration again on every ask.

dlt asks a destination for its capabilities about twenty times per load (extract, normalize and load each ask
several times), and each ask without a configuration resolves a partial one from scratch: every field looked up
in every provider and section (measured: 3.1 ms of CPU per ask with DuckDB, ~60 ms per checkpoint slice, 0.4 µs
per row of a 1M-event run in seven slices). That partial configuration depends only on what the destination was
made with and on the environment, which a run does not change for it; it is resolved once here, exactly as dlt
resolves it (dlt 1.30's ``Destination.capabilities``), and each ask still builds its capabilities from it.
"""

from __future__ import annotations

from typing import Any


def resolved_once(destination: Any) -> Any:
    """``destination`` (a dlt destination factory), its partial configuration resolved on the first ask only."""
    from dlt.common.configuration.specs import BaseConfiguration

    asked = destination.capabilities
    partial: list[Any] = []

    def capabilities(config: Any = None, naming: Any = None) -> Any:
        if config is None:
            if not partial:
                init_config = destination.spec()
                init_config.update(destination.config_params)
                if not init_config.credentials:  # (as dlt: mock credentials, so that none are resolved)
                    credentials = destination.spec.credentials_type(init_config)()
                    credentials.__is_resolved__ = True
                else:
                    credentials = init_config.credentials
                    if isinstance(credentials, BaseConfiguration):
                        credentials = credentials.copy()
                resolved = destination.spec(credentials=credentials)
                try:
                    resolved = destination.configuration(resolved, accept_partial=True)
                except Exception:  # noqa: BLE001 - as dlt: an invalid native value falls back to the empty config
                    pass
                partial.append(resolved)
            config = partial[0]
        return asked(config, naming)

    destination.capabilities = capabilities
    return destination
