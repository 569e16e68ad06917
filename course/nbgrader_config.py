"""nbgrader configuration for the optimlab course (the course root is this folder)."""

import os

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = "optimlab"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# The kernel every notebook is written for and graded with. The masters pin it in their
# metadata; nbgrader forces the masters' kernelspec onto submissions.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Execution while grading: a notebook may take a minute on two CPU cores; a cell that runs
# past the limit is interrupted and graded as failed, and the rest of the notebook still runs.
c.Execute.timeout = 180
c.Execute.interrupt_on_timeout = True
c.Execute.allow_errors = True
c.Execute.raise_on_iopub_timeout = False

# Restore locked cells from the gradebook, and put back test cells a student deleted.
c.OverwriteCells.add_missing_cells = True

# Keep hidden test cells' source out of the release; they return at autograde time.
c.ClearHiddenTests.enforce_metadata = True

# The feedback page renders its math as MathML when it is written (no MathJax from a CDN): a
# learner opens it from disk, without a network (optimlab/grade/feedback_html.py).
c.GenerateFeedback.exporter_class = "optimlab.grade.feedback_html.FeedbackExporter"
