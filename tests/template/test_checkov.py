"""checkov on the translated template finds nothing that SECURITY.md does not list and justify."""
import collections
import json
import re
import subprocess
import tempfile
from pathlib import Path

import template

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".bed" / "checkov" / "bin" / "checkov"


def accepted_findings():
    """SECURITY.md's table of checkov findings that stay: check id -> count."""
    text = (ROOT / "SECURITY.md").read_text()
    section = text.split("## checkov on the translated template", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (CKV2?_[A-Z]+_\d+) [^|]*\| (\d+) \|", section, re.M)
    return {check: int(count) for check, count in rows}


def test_checkovs_findings_are_the_ones_security_md_justifies():
    assert CHECKOV.exists(), "checkov is missing: run scripts/install"
    with tempfile.NamedTemporaryFile("w", suffix=".json") as translated:
        json.dump(template.translate(), translated)
        translated.flush()
        out = subprocess.run([str(CHECKOV), "-f", translated.name, "--framework",
                              "cloudformation", "-o", "json", "--quiet"],
                             capture_output=True, text=True)
    report = json.loads(out.stdout)
    assert report["summary"]["parsing_errors"] == 0
    failed = collections.Counter(f["check_id"] for f in report["results"]["failed_checks"])
    accepted = accepted_findings()
    assert accepted, "SECURITY.md lists no checkov findings"
    assert dict(failed) == accepted, (
        "checkov's findings differ from SECURITY.md's list: fix the new ones or list them "
        f"with their reason.\nfound: {dict(failed)}\nlisted: {accepted}")
    assert report["summary"]["passed"] >= 200
