"""Makes a tiny real measurement set with casatools (run with a CASA venv's python).

Usage: python make_ms.py OUTDIR
Writes OUTDIR/calibrated.ms (with CORRECTED_DATA, as applycal leaves it) and OUTDIR/uncalibrated.ms (the same
MS after removing CORRECTED_DATA, as importasdm leaves it). Needs CASASITECONFIG for offline use.
"""
import os
import sys

import casatools

out = os.path.abspath(sys.argv[1])
os.makedirs(out, exist_ok=True)
cal = os.path.join(out, "calibrated.ms")
uncal = os.path.join(out, "uncalibrated.ms")

sm = casatools.simulator()
me = casatools.measures()
qa = casatools.quanta()
sm.open(cal)
pos = me.observatory("ALMA")
sm.setconfig(telescopename="ALMA", x=[0.0, 30.0, 0.0], y=[0.0, 0.0, 40.0], z=[0.0, 0.0, 0.0],
             dishdiameter=[12.0] * 3, mount=["alt-az"] * 3, antname=["A1", "A2", "A3"],
             padname=["P1", "P2", "P3"], coordsystem="local", referencelocation=pos)
sm.setspwindow(spwname="spw0", freq="100GHz", deltafreq="1MHz", freqresolution="1MHz", nchannels=2,
               stokes="XX YY")
sm.setfeed(mode="perfect X Y")
sm.setfield(sourcename="src", sourcedirection=me.direction("J2000", "10h00m00", "-30d00m00"))
sm.settimes(integrationtime="10s", usehourangle=True, referencetime=me.epoch("UTC", "2024/03/01/00:00:00"))
sm.observe("src", "spw0", starttime="0s", stoptime="30s")
sm.close()

# The simulator leaves DATA only, or DATA+MODEL_DATA+CORRECTED_DATA depending on the version: make both states.
tb = casatools.table()
cb = casatools.calibrater()
cb.open(cal, addcorr=True, addmodel=False)
cb.close()
tb.open(cal)
print("calibrated columns:", tb.colnames())
tb.copy(uncal, deep=True)
tb.close()
tb.open(uncal, nomodify=False)
for col in ("CORRECTED_DATA", "MODEL_DATA"):
    if col in tb.colnames():
        tb.removecols(col)
print("uncalibrated columns:", tb.colnames())
tb.close()
