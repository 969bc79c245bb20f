"""The pick served by KServe's Python model server over the Open Inference Protocol (v2)
on 127.0.0.1, for the load sweep through a real server:

    python -m optimize.serve.kserve_server OUT PORT THREADS

serves the pick in the output folder OUT as the model named by model_name(pick), on one
instance with THREADS threads, until SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(out_dir: Path, port: int, threads: int) -> None:
    """Serve the pick until stopped."""
    import numpy as np
    from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
    from kserve.protocol.rest import server as rest

    from optimize.serve.load_sweep import open_instance
    from optimize.serve.pick_json import ServedPick
    from optimize.serve.triton import model_name, wire_type

    pick = ServedPick.read(out_dir)
    run = open_instance(pick, threads)

    class Pick(Model):
        def __init__(self) -> None:
            super().__init__(model_name(pick))
            self.ready = True

        def predict(
            self, payload: InferRequest, headers=None, response_headers=None
        ) -> InferResponse:
            feeds = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
            outputs = []
            for spec, array in zip(pick.outputs, run(feeds), strict=True):
                array = np.ascontiguousarray(array)
                output = InferOutput(spec["name"], list(array.shape), wire_type(array.dtype.name))
                output.set_data_from_numpy(array)
                outputs.append(output)
            return InferResponse(
                response_id=payload.id or "",
                model_name=self.name,
                infer_outputs=outputs,
                use_binary_outputs=payload.use_binary_outputs,
                requested_outputs=payload.request_outputs,
            )

    # KServe binds its REST server to every interface; load goes to loopback only.
    serve_everywhere = rest.RESTServer.__init__

    def serve_on_loopback(self, *args, **kwargs) -> None:
        serve_everywhere(self, *args, **kwargs)
        self.config.host = "127.0.0.1"

    rest.RESTServer.__init__ = serve_on_loopback
    ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False).start(
        [Pick()]
    )


if __name__ == "__main__":
    out, port, threads = sys.argv[1:4]
    # KServe reads sys.argv when it is imported: it must not see this script's arguments.
    sys.argv = sys.argv[:1]
    main(Path(out), int(port), int(threads))
