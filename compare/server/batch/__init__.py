"""Azure OpenAI batch emulation: the files and batches routes and the jobs behind them.

`files` stores uploads and outputs on disk, `validate` checks an input file the way Azure does
before a job starts, `execute` runs a job's requests on the deployment's backend with bounded
concurrency, `jobs` holds each job's state and its wire form, `routes` is the HTTP side.
Files are streamed line by line: a 100,000-line job holds its counters in memory, not its lines.
"""
