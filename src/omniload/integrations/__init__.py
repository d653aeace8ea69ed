"""omniload inside other tools (optional extras): :mod:`.dagster` declares Klaviyo accounts as Dagster assets."""
