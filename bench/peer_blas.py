"""Shared by the PyTorch peer's bench scripts."""


def blas():
    """Which BLAS this process loaded (Debian's torch takes the system's libblas.so.3): openblas or reference."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return "unknown"
    return "openblas" if "openblas" in maps else "reference" if "libblas.so" in maps else "unknown"
