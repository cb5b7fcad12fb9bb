# Stand-in for the ALMA pipeline's runpipeline.py: the fake CASA only checks that this file exists.
