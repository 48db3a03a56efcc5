"""Prediction tasks: losses for training and split-exact metrics for evaluation.

Registered under the canonical (Taskonomy) names ``segment_semantic``,
``depth_zbuffer``, ``normal``, ``keypoints2d`` and ``edge_texture``; build one with
``build_task(name, style, num_classes)``. Data sets of the ``attributes`` style name their
own tasks: any name builds a binary :class:`AttributeTask` there. Metric names and
directions live in :mod:`trials.metrics`.

Metric accumulators reduce each batch on the prediction's device in float32 (no
float64, so every accelerator works) and keep split totals as Python floats, so a
metric over the split is one sum divided by one count, never a mean of batch means.
"""

from trials.tasks._attribute import (
    ATTRIBUTE_STYLE,
    AttributeMetrics,
    AttributeTask,
    attribute_logits,
)
from trials.tasks._base import (
    NAMED_TASK_STYLES,
    TASKS,
    MetricInfo,
    Task,
    TaskMetrics,
    build_task,
)
from trials.tasks._dense_l1 import DenseL1Metrics, DenseL1Task, EdgeTextureTask, Keypoints2dTask
from trials.tasks._depth import DepthMetrics, DepthTask
from trials.tasks._normal import NormalMetrics, NormalTask, angle_degrees
from trials.tasks._segmentation import SegmentationMetrics, SegmentationTask

__all__ = [
    "ATTRIBUTE_STYLE",
    "NAMED_TASK_STYLES",
    "TASKS",
    "AttributeMetrics",
    "AttributeTask",
    "DenseL1Metrics",
    "DenseL1Task",
    "DepthMetrics",
    "DepthTask",
    "EdgeTextureTask",
    "Keypoints2dTask",
    "MetricInfo",
    "NormalMetrics",
    "NormalTask",
    "SegmentationMetrics",
    "SegmentationTask",
    "Task",
    "TaskMetrics",
    "angle_degrees",
    "attribute_logits",
    "build_task",
]
