"""The PointAcc mapping unit (docs/spec.md §5): sortable keys, a bitonic sorter, a merger of sorted runs
and an intersection unit that turns sorted keys into kernel-map pairs."""
