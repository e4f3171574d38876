"""What `python -m ncjax.bench` measures beyond the step: compiling and dispatch (bench_compile), timed steps
(step_timer)."""
