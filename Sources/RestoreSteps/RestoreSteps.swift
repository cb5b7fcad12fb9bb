// Module RestoreSteps.
