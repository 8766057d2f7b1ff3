"""Trial metrics: what each trial's TensorBoard logs say, and the ranking they give.

`ranking` is pure (series in, a ranked status and a prune selection out);
`events` reads local event files with TensorBoard's own reader, without
TensorFlow; `tensorboard` reads a sweep's TensorBoard over HTTP; `sources`
picks one for a backend; `sheet` draws the report.
"""
