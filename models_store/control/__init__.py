"""The signed control log, folded the same way on every worker: commands, signing, the
folded state, rejections, transitions, the fold, audit records.
"""
