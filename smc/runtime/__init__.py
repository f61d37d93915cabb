"""The worker runtime: runs compiled machines against the job queue and event store.

Never imports ``smc.compiler``: a deployed worker needs only the generated modules and this
package.
"""
