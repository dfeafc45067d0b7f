"""bed.py stops everything it started when the process that started it goes away."""
import json
import subprocess
import sys
import time
from pathlib import Path

import urllib.request

from airflow_bed import port_is_free

BED = Path(__file__).resolve().parent / "bed.py"


def answers(url):
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except OSError as e:
        return hasattr(e, "code")  # an HTTP error still means something listens


def test_the_bed_stops_when_its_parent_goes_away_even_with_its_pipes_closed():
    bed = subprocess.Popen([sys.executable, str(BED), "--airflow", ""], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        endpoints = json.loads(bed.stdout.readline())
        moto_port = int(endpoints["moto_url"].rsplit(":", 1)[1])
        mwaa_port = int(endpoints["mwaa_url"].rsplit(":", 1)[1])
        assert answers(endpoints["mwaa_url"] + "/environments")
        assert not port_is_free(moto_port)
        # A parent that dies closes every pipe at once: stdin (the signal to stop) and the
        # stdout/stderr the bed would log its teardown to.
        for pipe in (bed.stdin, bed.stdout, bed.stderr):
            pipe.close()
        assert bed.wait(60) == 0
        deadline = time.time() + 10
        while time.time() < deadline and not (port_is_free(moto_port) and port_is_free(mwaa_port)):
            time.sleep(0.2)
        assert port_is_free(moto_port), "moto outlived the bed"
        assert port_is_free(mwaa_port), "the control plane outlived the bed"
    finally:
        if bed.poll() is None:
            bed.kill()
