"""The signed control log, folded the same way on every worker: commands, signing, the fold,
audit records.
"""
