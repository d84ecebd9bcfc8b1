"""Cycle models that predict the RTL's timing exactly (tests compare them cycle for cycle)."""
