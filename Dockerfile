# oomlab in a container: the image `oomlab sweep --emit kubernetes` runs.
#
#   docker build -t oomlab .                        # slim runtime: the binary alone
#   docker build --target pandas -t oomlab:pandas .  # plus the pandas reference environment
#
# The binary is built with the README's build command (`cargo run --release`
# builds exactly what `cargo build --release` does). Everything the binary
# carries (scenarios, committed models, the pandas reference, the font) is
# compiled in, so the runtime stages need no checkout. Not built in CI (no
# container daemon there); see docs/install.md for how it was checked.

# --- build: the release binary --------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY assets ./assets
COPY scenarios ./scenarios
COPY reports/*.json ./reports/
RUN cargo build --release --locked \
 && install -m 0755 target/release/oomlab /usr/local/bin/oomlab

# --- pandas (optional): the binary beside the pandas reference's environment,
# for command sweeps of scenarios/pandas/ranking_prep.py and `oomlab fidelity`.
FROM python:3.11-slim-bookworm AS pandas
COPY --from=build /usr/local/bin/oomlab /usr/local/bin/oomlab
WORKDIR /opt/oomlab
COPY scenarios ./scenarios
RUN pip install --no-cache-dir -r scenarios/pandas/requirements.txt
ENV OOMLAB_CACHE_DIR=/cache
ENTRYPOINT ["oomlab"]
CMD ["--help"]

# --- runtime (default): the binary alone on a slim Debian (glibc, /bin/sh for
# the Job's per-index script).
FROM debian:bookworm-slim AS runtime
COPY --from=build /usr/local/bin/oomlab /usr/local/bin/oomlab
WORKDIR /work
ENV OOMLAB_CACHE_DIR=/cache
ENTRYPOINT ["oomlab"]
CMD ["--help"]
