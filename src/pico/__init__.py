"""pico: Pixel-level Correspondence (PiCO; Sharma, Zhu, Russell, Brox) as a reproducible workflow.

The package is grouped by layer; each layer imports only those above it in this map, and
every ``__init__`` is empty, so parsing the Snakefile (``plan``, which reads ``config``,
``rerun``, ``flow_backends``, ``data.sources`` and ``data.weights``) loads no numpy, pyarrow,
matplotlib or torch.

``config``, ``logs``, ``seeding``, ``profiles``, ``rerun``, ``flow_backends``
    the config schema and its checks, rule logs and progress, seeded draws, the SLURM profile
    link, which settings rerun a job, one record per optical-flow backend
``store``: atomic, verified on-disk formats
    ``files`` (atomic outputs, checked Parquet and JSON, read-ahead), ``zipstore``, ``framestore``
    (a snippet's frames), ``flowstore`` (Section 3.2's flow codec), ``manifest`` (per-shard
    video tables), ``checkpoint`` (sealed torch files)
``data``: stages 1-6, one module per rules file
    ``sources``, ``yt8m`` (with ``tfrecord``, YouTube-8M's files), ``download``, ``synthetic``
    (the demo world) and ``video`` (stage 1, Section 3.1); ``shots`` (TransNetV2); ``frames``
    (30 Hz); ``weights`` and ``flow`` (Section 3.2); ``tracks`` (Eq. 3's forward-backward
    cut); ``sampling`` and ``pairs`` (Section 3.3's frame selection and point pairs)
``learn``: stage 7, Section 3.4
    ``model`` (the dense network f, pixel MoCo, Eq. 1), ``augment`` (MoCo-v2's views),
    ``training`` (the one training loop), ``pretrain`` (the pixel method's data, point budget
    and held-out pretext), ``launch`` (torchrun on several GPUs or nodes), ``encoder`` (the
    image-level MoCo-v2 stand-in), ``resume`` (every loop's checkpoints)
``evaluation``: stage 8, Section 4
    ``registry`` (the benchmarks by name), ``probe`` (linear probes), ``mask_rcnn``,
    ``metrics``, ``readers`` (official dataset layouts), ``panoptic``, ``demo_data`` (the
    demo's benchmark data), ``correspondence`` (with ``demo_correspondence``, its demo pairs),
    ``groundtruth``, ``propagation`` and ``tapvid`` (beyond the paper)
``reporting``: what the report shows
    ``health``, ``availability`` (a yt8m dataset's), ``figures``, ``tables``, ``plots``,
    ``ablations`` (Figures 3-5), ``reproduction`` (the mini-reproduction)
``plan``: what the workflow builds
    everything one config builds, computed at parse time for the rules (rules/common.smk); it
    reads the layers above and no module imports it
"""

__version__ = "0.1.0"
