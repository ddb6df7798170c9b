/* SPDX-License-Identifier: Apache-2.0 */
/* push_body: the experiment's push body (seed/README.md), shared by tests and proto_bench. */
#ifndef PROMLET_TESTS_PUSH_BODY_H
#define PROMLET_TESTS_PUSH_BODY_H

/* What the .NET service POSTs to /metrics/job/webserver/instance/webserver:5000 after every
 * request: HELP/TYPE gauge blocks, one sample each, no timestamps; the HELP of
 * busy_worker_threads is empty after the name. */
static const char push_body[] =
    "# HELP max_worker_threads Maximum number of worker threads in the thread pool.\n"
    "# TYPE max_worker_threads gauge\n"
    "max_worker_threads 32767\n"
    "# HELP available_worker_threads Number of available worker threads.\n"
    "# TYPE available_worker_threads gauge\n"
    "available_worker_threads 32761\n"
    "# HELP busy_worker_threads \n"
    "# TYPE busy_worker_threads gauge\n"
    "busy_worker_threads 6\n"
    "# HELP max_completion_port_threads Maximum number of completion port threads.\n"
    "# TYPE max_completion_port_threads gauge\n"
    "max_completion_port_threads 1000\n"
    "# HELP available_completion_port_threads Number of available completion port threads.\n"
    "# TYPE available_completion_port_threads gauge\n"
    "available_completion_port_threads 1000\n"
    "# HELP busy_completion_port_threads Number of busy completion port threads.\n"
    "# TYPE busy_completion_port_threads gauge\n"
    "busy_completion_port_threads 0\n"
    "# HELP system_runtime_threadpool_queue_length Length of the thread pool work item queue.\n"
    "# TYPE system_runtime_threadpool_queue_length gauge\n"
    "system_runtime_threadpool_queue_length 43\n"
    "# HELP system_runtime_cpu_usage CPU usage in percent.\n"
    "# TYPE system_runtime_cpu_usage gauge\n"
    "system_runtime_cpu_usage 12.5\n"
    "# HELP process_number_of_threads Number of threads of the process.\n"
    "# TYPE process_number_of_threads gauge\n"
    "process_number_of_threads 41\n";

#endif
