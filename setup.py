"""The one compiled part: properties=columns' batch reader in C (src/omniload/sources/klaviyo/_lift.c, see lift.py).

Optional: where it cannot be built (no C compiler), omniload installs without it and lift.py reads every batch in
Python, with the same result. pyproject.toml holds everything else.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "omniload.sources.klaviyo._lift",
            ["src/omniload/sources/klaviyo/_lift.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
