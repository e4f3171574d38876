"""What every layer uses: strings from files made printable, settings' choices and checks, the version, and the
XLA flags set before JAX starts."""
