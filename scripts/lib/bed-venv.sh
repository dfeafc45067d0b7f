# Sourced by scripts/install and scripts/metadata-matrix: the bed's venv stamps.
# A venv DIR is current when DIR.stamp holds exactly the files it was installed from.
# Needs: $uv (uv binary), $python (interpreter for new venvs).

stamp_ok() { [ -f "$1.stamp" ] && cmp -s "$1.stamp" <(cat "${@:2}"); }
stamp() { cat "${@:2}" > "$1.stamp"; }

# A venv's scripts name their interpreter by the path the venv was made at: one made through a
# worktree's .bed symlink breaks when that worktree is removed (found 2026-11-30: 2.7.2 and
# 2.11.0 pointed at a removed /work/wt-metadata). Made at the resolved path; a dead one is redone.
usable() { local first; first=$(head -n 1 "$1/bin/airflow" 2>/dev/null) && [ -x "${first#\#!}" ]; }

# airflow_venv VENV CONSTRAINTS: (re)make VENV from a frozen constraints file unless its stamp
# says it was made from exactly that file and its scripts still run.
airflow_venv() {
  local venv constraints=$2
  venv=$(realpath -m "$1")
  stamp_ok "$venv" "$constraints" && usable "$venv" && return 0
  echo "install: $(basename "$venv") from ${constraints#"${root:-}"/}" >&2
  rm -rf "$venv"
  "$uv" venv --quiet --python "$python" "$venv"
  VIRTUAL_ENV="$venv" "$uv" pip install --quiet --compile-bytecode -r "$constraints"
  stamp "$venv" "$constraints"
}
