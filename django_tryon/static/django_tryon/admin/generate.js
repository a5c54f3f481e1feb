// "Generate try-on pictures": keep the count of provider requests in step with the choices.
// Without JavaScript, the "Count again" button gives the same figure from the server.
"use strict";
{
    const form = document.getElementById("tryon-generate-form");
    if (form) {
        const output = document.getElementById("tryon-call-count");
        const includeExisting = document.getElementById("id_include_existing");
        const update = () => {
            let total = 0;
            for (const box of form.querySelectorAll("input[name=model_photos]:checked")) {
                total += Number(box.dataset.new);
                if (includeExisting.checked) {
                    total += Number(box.dataset.withResult);
                }
            }
            output.textContent = String(total);
        };
        form.addEventListener("change", update);
    }
}
