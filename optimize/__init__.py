"""The optimization job: load, plan, run passes, measure, choose and report."""
