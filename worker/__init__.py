"""The worker process: builds the dependencies, registers workflows and activities on the task
queue, and runs the alarm watcher beside them."""
