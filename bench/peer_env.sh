# Sourced by the bench scripts: gives the PyTorch peer an optimised BLAS.
#
# Debian's python3-torch (1.13) does its matrix products through whatever libblas.so.3 the system selects, and a
# plain Debian install selects the reference BLAS (libblas3): about 2.5 GFLOP/s, which makes a BERT step 14 times
# slower than with OpenBLAS and is no fair peer. A Debian user would install libopenblas0-pthread; this does the same
# without touching the system: `apt-get download` the package once, unpack it under the data folder's cache, and put
# its libblas.so.3 first on LD_LIBRARY_PATH for the peer only. WTN_PEER_BLAS=system keeps the system's BLAS.
# Usage: source bench/peer_env.sh THREADS; then run the peer as: env "${peer_env[@]}" /usr/bin/python3 ...
peer_threads=${1:-1}
peer_env=(OPENBLAS_NUM_THREADS="$peer_threads")
if [ "${WTN_PEER_BLAS:-openblas}" != system ]; then
  peer_blas_dir="${WTN_DATA:-data}/cache/peer-openblas"
  peer_blas_lib="$peer_blas_dir/root/usr/lib/x86_64-linux-gnu/openblas-pthread"
  if [ ! -e "$peer_blas_lib/libblas.so.3" ]; then
    mkdir -p "$peer_blas_dir"
    ( cd "$peer_blas_dir" && rm -f libopenblas0-pthread_*.deb && apt-get download libopenblas0-pthread >/dev/null 2>&1 \
        && dpkg-deb -x libopenblas0-pthread_*.deb root && rm -f libopenblas0-pthread_*.deb ) \
      || echo "peer BLAS: could not fetch Debian's libopenblas0-pthread (apt-get download); the PyTorch peer keeps the system BLAS" >&2
  fi
  if [ -e "$peer_blas_lib/libblas.so.3" ]; then
    peer_env+=(LD_LIBRARY_PATH="$peer_blas_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  fi
fi
