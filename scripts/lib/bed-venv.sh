# Sourced by scripts/install and scripts/metadata-matrix: the bed's venv stamps.
# A venv DIR is current when DIR.stamp holds exactly the files it was installed from.
# Needs: $uv (uv binary), $python (interpreter for new venvs).

stamp_ok() { [ -f "$1.stamp" ] && cmp -s "$1.stamp" <(cat "${@:2}"); }
stamp() { cat "${@:2}" > "$1.stamp"; }

# airflow_venv VENV CONSTRAINTS: (re)make VENV from a frozen constraints file unless its stamp
# says it was made from exactly that file.
airflow_venv() {
  local venv=$1 constraints=$2
  stamp_ok "$venv" "$constraints" && return 0
  echo "install: $(basename "$venv") from ${constraints#"${root:-}"/}" >&2
  rm -rf "$venv"
  "$uv" venv --quiet --python "$python" "$venv"
  VIRTUAL_ENV="$venv" "$uv" pip install --quiet --compile-bytecode -r "$constraints"
  stamp "$venv" "$constraints"
}
