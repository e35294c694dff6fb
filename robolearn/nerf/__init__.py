"""robolearn.nerf: an online NeRF bridge on nerfstudio (issue 8).

Cheap to import (numpy only); nerfstudio/torch load in the modules that need them.

==================  =====================================================================
``frames``          Frame / Intrinsics, validation (size, NaN pose, rotation, intrinsics)
``buffer``          memory-bounded frame buffer, keyframe eviction, recency/uniform weights
``sync``            pose sources (FK wrist camera, fixed camera, pose stream), TimeSync
``datamanager``     StreamingDataManager: a nerfstudio VanillaDataManager fed at run time
``model``           nerfacto without the LPIPS download; TrainerConfig builder
``bridge``          NerfBridge: add_frame / train / render / density / evaluate / save
``checkpoint``      safetensors + JSON checkpoints (no pickles)
``sim_source``      posed RGB-D frames from the MuJoCo tabletop (exact poses and depth)
``synthetic``       an analytic scene with known geometry (tests, benchmarks)
``sources``         frame sources of ``robolearn-nerf train`` (synthetic, sim, store)
``export``          frames -> nerfstudio dataset (transforms.json)
``report``          metrics.csv, PSNR plot, held-out GT-vs-render grid
``tv_hook``         torchvision beside CPU torch (``python -m robolearn.nerf.tv_compat``)
==================  =====================================================================
"""
