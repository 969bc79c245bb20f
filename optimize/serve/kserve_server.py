"""The pick served by KServe's Python model server over the Open Inference Protocol (v2),
for the load sweep through a real server and for a language model's KServe manifest:

    python -m optimize.serve.kserve_server OUT PORT THREADS [HOST]

serves the pick in the output folder OUT as the model named by model_name(pick), on one
instance with THREADS threads, until SIGTERM, on HOST (127.0.0.1 unless given). A language
model's pick takes strings ("prompt") and answers strings ("text"); a request's
`max_new_tokens` parameter bounds the answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"


def main(out_dir: Path, port: int, threads: int, host: str = LOOPBACK) -> None:
    """Serve the pick until stopped."""
    import numpy as np
    from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
    from kserve.protocol.rest import server as rest

    from optimize.serve.load_sweep import open_instance
    from optimize.serve.pick_json import ServedPick
    from optimize.serve.text_generator import open_text_generator
    from optimize.serve.triton import model_name, wire_type

    pick = ServedPick.read(out_dir)
    if pick.generative:
        generator = open_text_generator(pick, threads)

        def run(feeds, parameters):
            # As many new tokens as the timed runs generated, unless the request says.
            limit = parameters.get("max_new_tokens")
            return generator(feeds, int(limit)) if limit else generator(feeds)
    else:
        instance = open_instance(pick, threads)

        def run(feeds, parameters):
            return instance(feeds)

    class Pick(Model):
        def __init__(self) -> None:
            super().__init__(model_name(pick))
            self.ready = True

        def predict(
            self, payload: InferRequest, headers=None, response_headers=None
        ) -> InferResponse:
            feeds = {tensor.name: tensor.as_numpy() for tensor in payload.inputs}
            outputs = []
            for spec, array in zip(pick.outputs, run(feeds, payload.parameters or {}), strict=True):
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

    # KServe binds its REST server to every interface; a sweep on this machine serves
    # loopback only, a container every interface it has.
    serve_everywhere = rest.RESTServer.__init__

    def serve_on_host(self, *args, **kwargs) -> None:
        serve_everywhere(self, *args, **kwargs)
        self.config.host = host

    rest.RESTServer.__init__ = serve_on_host
    ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False).start(
        [Pick()]
    )


if __name__ == "__main__":
    out, port, threads, *host = sys.argv[1:]
    # KServe reads sys.argv when it is imported: it must not see this script's arguments.
    sys.argv = sys.argv[:1]
    main(Path(out), int(port), int(threads), *host)
