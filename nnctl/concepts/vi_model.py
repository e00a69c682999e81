"""`nnctl explain --lang vi`, nửa đầu của môn học: nơ-ron, hàm kích hoạt, vì sao mạng nơ-ron làm được
việc, lan truyền xuôi và ngược, hàm mất mát. Công thức và khoá cấu hình giữ nguyên dạng ASCII như bản
tiếng Anh (en_model.py); mỗi mục "config" nói về các lệnh trong concepts.SHOW."""

TOPICS: dict[str, dict[str, str]] = {
    "perceptron": {
        "title": "perceptron: một nơ-ron với đầu ra bậc thang",
        "what": "Perceptron của Rosenblatt (1958) là một nơ-ron nhân tạo duy nhất: nó nhân mỗi đầu vào với một "
                "trọng số, cộng thêm bias, rồi cho ra 1 nếu tổng không âm, ngược lại cho ra 0. Về hình học, nó chia "
                "không gian đầu vào bằng một đường thẳng (một siêu phẳng khi có nhiều chiều). Nó học bằng cách "
                "chỉnh trọng số về phía từng mẫu mà nó đoán sai.",
        "formula": "z = x . w + b\ny_hat = 1 nếu z >= 0, ngược lại 0\nquy tắc học, lần lượt từng mẫu:\n"
                   "  w <- w + lr * (y - y_hat) * x,   b <- b + lr * (y - y_hat)",
        "when": "Làm mô hình đầu tiên của môn học, và khi các lớp tách được tuyến tính: khi đó quy tắc học chắc "
                "chắn tìm ra một đường phân tách sau hữu hạn lần đoán sai.",
        "pitfall": "Một nơ-ron chỉ vẽ được một biên thẳng, nên không học được XOR hay bất kỳ bài toán nào mà các "
                   "lớp không tách được tuyến tính; trên dữ liệu như thế quy tắc học không bao giờ dừng hẳn. Hàm "
                   "bậc thang có đạo hàm bằng 0 gần như khắp nơi, nên hạ gradient không huấn luyện được một chồng "
                   "perceptron: vì thế mạng nơ-ron dùng các hàm kích hoạt trơn như sigmoid.",
        "config": "hidden: [] chỉ giữ lại tầng đầu ra. Với một đơn vị sigmoid và entropy chéo, đó là hồi quy "
                  "logistic, tức perceptron có hàm bậc thang được làm trơn thành sigmoid. Trên XOR nó chỉ đạt "
                  "quanh mức đoán mò (độ chính xác kiểm định khoảng 0.55); cấu hình gốc với một tầng ẩn 8 đơn vị "
                  "tanh đạt khoảng 0.96.",
    },
    "activation": {
        "title": "hàm kích hoạt: vì sao mạng cần một phép phi tuyến",
        "what": "Hàm kích hoạt g được áp dụng lên tổng có trọng số của từng đơn vị: A = g(Z). Không có nó, một "
                "chồng nhiều tầng dù sâu đến đâu cũng chỉ là một ánh xạ tuyến tính, vì tích của các ma trận vẫn là "
                "một ma trận. Chính tính phi tuyến cho phép mạng uốn cong biên quyết định.",
        "formula": "không có g:  (X @ W1 + b1) @ W2 + b2 = X @ (W1 @ W2) + (b1 @ W2 + b2)\n"
                   "            = một tầng duy nhất với W = W1 @ W2\ncó g:        A1 = g(X @ W1 + b1),  A2 = A1 @ "
                   "W2 + b2",
        "when": "Mọi tầng ẩn đều cần một hàm kích hoạt. ReLU và họ hàng của nó là lựa chọn mặc định cho tầng ẩn; "
                "tanh hợp với mạng nhỏ và hàm trơn; sigmoid và softmax thuộc về tầng đầu ra của bộ phân loại "
                "(nnctl tự chọn hàm kích hoạt cho tầng đầu ra).",
        "pitfall": "activation: linear ở các tầng ẩn âm thầm biến cả mạng thành một mô hình tuyến tính. Các hàm "
                   "bị chặn (sigmoid, tanh) bão hoà khi đầu vào lớn; các hàm không bị chặn (ReLU) có thể \"chết\". "
                   "Hàm kích hoạt cũng quyết định cách khởi tạo trọng số phù hợp.",
        "config": "Với hàm kích hoạt tuyến tính, mạng trên moons chỉ vẽ được một biên thẳng và dừng ở độ chính "
                  "xác kiểm định khoảng 0.87; với relu (cấu hình gốc) biên uốn theo hai nửa vầng trăng và đạt khoảng "
                  "0.96. nnctl plot vẽ cả hai biên quyết định.",
    },
    "sigmoid": {
        "title": "hàm sigmoid (hàm logistic)",
        "what": "Sigmoid ép mọi số thực vào khoảng (0, 1), nên đầu ra của nó được đọc như một xác suất. Hàm trơn, "
                "và đạo hàm tính rất rẻ từ chính đầu ra. Nó từng là hàm kích hoạt kinh điển cho tầng ẩn; ngày nay "
                "chủ yếu dùng ở đầu ra của bộ phân loại nhị phân.",
        "formula": "sigmoid(z) = 1 / (1 + e^-z)\nsigmoid'(z) = sigmoid(z) * (1 - sigmoid(z)) <= 0.25\n"
                   "sigmoid(0) = 0.5,  sigmoid(-z) = 1 - sigmoid(z)",
        "when": "Đơn vị đầu ra của bộ phân loại nhị phân, đi cùng entropy chéo nhị phân (nnctl tự chọn khi có hai "
                "lớp: một đơn vị đầu ra cho xác suất của lớp thứ hai). Ngoài ra là các cổng có giá trị phải nằm "
                "giữa 0 và 1.",
        "pitfall": "Khi |z| lớn hơn khoảng 5, đường cong gần như phẳng và đạo hàm gần 0: đơn vị bị bão hoà và "
                   "hầu như không truyền gradient ngược lại. Ngay cả lúc tốt nhất đạo hàm cũng chỉ là 0.25, nên mỗi "
                   "tầng sigmoid làm gradient nhỏ đi ít nhất bốn lần, và mạng sigmoid sâu gặp gradient biến mất. "
                   "Đầu ra luôn dương (không đối xứng quanh 0) cũng làm việc học chậm hơn.",
        "config": "init: auto cho các tầng sigmoid khởi tạo Xavier. Trên moons, hai tầng sigmoid vẫn học được "
                  "(khoảng 0.96); nnctl inspect cho thấy tỉ lệ bão hoà của từng tầng, tức phần đầu ra nằm cách 0 "
                  "hoặc 1 không quá 0.03.",
    },
    "tanh": {
        "title": "hàm tang hyperbolic (tanh)",
        "what": "tanh ép đầu vào vào khoảng (-1, 1). Nó là sigmoid được co giãn lại nhưng đối xứng quanh 0, nên "
                "tầng sau nhận đầu vào có cả hai dấu, và độ dốc tại gốc gấp bốn lần sigmoid.",
        "formula": "tanh(z) = (e^z - e^-z) / (e^z + e^-z) = 2 * sigmoid(2z) - 1\ntanh'(z) = 1 - tanh(z)^2   "
                   "(bằng 1 tại z = 0)",
        "when": "Mạng nhỏ, mục tiêu hồi quy trơn (một đường sin), và những bài toán mà biểu diễn ẩn bị chặn, đối "
                "xứng quanh 0 có ích. Dùng kèm khởi tạo Xavier.",
        "pitfall": "Giống sigmoid, tanh cũng bão hoà: khi |z| lớn hơn khoảng 3 đạo hàm gần 0. Đầu vào chưa chuẩn "
                   "hoá hoặc khởi tạo He (vốn dành cho ReLU) đẩy các đơn vị vào vùng bão hoà ngay từ đầu.",
        "config": "circles dùng một tầng ẩn 8 đơn vị tanh; init: auto chọn xavier_uniform cho nó. Thêm --set "
                  "model.init=he_normal thì nnctl cảnh báo HE_INIT_SATURATING trước khi huấn luyện.",
    },
    "relu": {
        "title": "đơn vị tuyến tính chỉnh lưu (ReLU)",
        "what": "ReLU giữ nguyên đầu vào dương và biến đầu vào âm thành 0. Đây là hàm kích hoạt mặc định của các "
                "mạng hiện đại: tính rẻ, không bão hoà với đầu vào dương, và làm nhiều đơn vị bằng đúng 0 (biểu "
                "diễn thưa). Một mạng ReLU tính một hàm tuyến tính từng khúc.",
        "formula": "relu(z) = max(0, z)\nrelu'(z) = 1 nếu z > 0, ngược lại 0",
        "when": "Tầng ẩn của hầu hết các MLP, đi cùng khởi tạo He (init: auto của nnctl làm vậy cho cả họ ReLU).",
        "pitfall": "Một đơn vị có đầu vào âm với mọi mẫu sẽ cho ra 0 và nhận gradient bằng 0, nên không bao giờ "
                   "hồi phục: một ReLU \"chết\". Tốc độ học quá lớn hoặc bias quá âm làm chết đơn vị; leaky_relu "
                   "hay elu giữ lại một chút gradient khi z < 0.",
        "config": "bias_init: -3 cho mọi đơn vị khởi đầu với đầu vào âm: nnctl báo DEAD_RELU trong lúc huấn luyện "
                  "và mạng chỉ đạt mức đoán mò. nnctl inspect cho thấy tỉ lệ đơn vị chết ở từng tầng.",
    },
    "leaky_relu": {
        "title": "leaky ReLU (ReLU rò rỉ)",
        "what": "Leaky ReLU là ReLU có một độ dốc nhỏ alpha cho đầu vào âm, thay vì một đoạn phẳng bằng 0. Đơn vị "
                "luôn truyền ngược lại một ít gradient, nên không thể chết.",
        "formula": "leaky_relu(z) = z nếu z > 0, ngược lại alpha * z     (mặc định alpha = 0.01)\n"
                   "leaky_relu'(z) = 1 nếu z > 0, ngược lại alpha",
        "when": "Khi các đơn vị ReLU chết (phát hiện DEAD_RELU), hoặc đơn giản để thay thế ReLU. init: auto cũng "
                "dùng khởi tạo He cho nó.",
        "pitfall": "Với alpha = 0.01, phía âm học chậm hơn 100 lần: một đơn vị bị đẩy xa về phía âm chỉ hồi phục "
                   "từ từ, nên cách chữa thật sự vẫn là giảm tốc độ học quá lớn. alpha là thêm một siêu tham số; "
                   "alpha = 1 biến đơn vị thành tuyến tính.",
        "config": "bias_init: -3 cho mọi đơn vị khởi đầu với đầu vào âm. relu dừng ở mức đoán mò (độ chính xác "
                  "kiểm định 0.5); leaky_relu vẫn học tiếp nhờ phía âm và đạt khoảng 0.88. Độ dốc đặt bằng "
                  "activation_options, ví dụ --set 'model.activation_options={alpha: 0.1}'.",
    },
    "softmax": {
        "title": "softmax: xác suất của các lớp",
        "what": "Softmax biến một hàng gồm C điểm số (logit) thành C số dương có tổng bằng 1, mỗi lớp một xác "
                "suất. Điểm cao nhất nhận xác suất lớn nhất, nhưng lớp nào cũng giữ lại một phần.",
        "formula": "softmax(z)_k = e^(z_k) / sum_j e^(z_j)\ntính bằng e^(z_k - max(z)) / sum_j e^(z_j - max(z)):\n"
                   "  cùng giá trị, và e^z không bao giờ tràn số\nđi cùng entropy chéo:  dJ/dZ = (A - Y) / n",
        "when": "Tầng đầu ra của bộ phân loại có từ ba lớp trở lên, luôn đi cùng entropy chéo (nnctl tự chọn: mỗi "
                "lớp một đơn vị đầu ra, theo thứ tự nhãn đã sắp xếp).",
        "pitfall": "Không dùng cho tầng ẩn, cũng không dùng cho bài toán đa nhãn, nơi nhiều lớp có thể cùng đúng. "
                   "Tính ngây thơ thì e^z tràn số khi điểm lớn hơn khoảng 700 (float64) hay 88 (float32). Softmax "
                   "tự tin chưa chắc đã được hiệu chỉnh tốt: xác suất gần 1 vẫn có thể sai.",
        "config": "iris_csv có ba loài hoa, nên nnctl dựng một tầng đầu ra softmax. predict --proba in mỗi loài "
                  "một cột xác suất, tổng mỗi hàng bằng 1.",
    },
    "universal_approximation": {
        "title": "định lý xấp xỉ phổ quát",
        "what": "Một mạng có một tầng ẩn, đủ nhiều đơn vị và một hàm kích hoạt không phải đa thức (sigmoid, tanh, "
                "ReLU, ...) có thể xấp xỉ mọi hàm liên tục trên một miền bị chặn với độ chính xác tuỳ ý (Cybenko "
                "1989, Hornik 1991, Leshno và cộng sự 1993). Mỗi đơn vị góp một chỗ gồ hay một chỗ gập; đủ nhiều "
                "chỗ như thế cộng lại thành hình dạng bất kỳ.",
        "formula": "f(x) ~ c + sum_{j=1..m} v_j * g(x . w_j + b_j)\nvới mọi eps > 0 có một m sao cho "
                   "|f(x) - mạng(x)| < eps trên cả miền",
        "when": "Để biết rằng về nguyên tắc một MLP đủ linh hoạt, chẳng hạn cho một mục tiêu hồi quy trơn, và để "
                "lập luận về độ rộng: càng nhiều đơn vị, xấp xỉ càng mịn.",
        "pitfall": "Định lý chỉ nói rằng có tồn tại một mạng tốt; nó không nói cần bao nhiêu đơn vị (có thể nhiều "
                   "khủng khiếp), hạ gradient có tìm ra mạng đó không, hay mạng có tổng quát hoá ra ngoài dữ liệu "
                   "huấn luyện không. Nó cũng không nói gì về độ sâu, thứ thường hiệu quả hơn độ rộng rất nhiều.",
        "config": "sine khớp y = sin(x) bằng một tầng ẩn. Với 2 đơn vị tanh, đường khớp còn thô (r2 kiểm định "
                  "khoảng 0.90); với 32 đơn vị nó chạm mức nhiễu (r2 khoảng 0.97) và dừng sớm. nnctl plot vẽ đường "
                  "đã khớp chồng lên dữ liệu.",
    },
    "depth": {
        "title": "độ sâu: vì sao cần mạng sâu",
        "what": "Một mạng sâu là phép hợp của nhiều hàm đơn giản: mỗi tầng mô tả lại đầu ra của tầng trước. Có "
                "những hàm cần ít đơn vị hơn theo cấp số mũ khi được tính qua nhiều tầng thay vì một tầng, vì phép "
                "hợp lặp lại cấu trúc: mỗi tầng gập đầu vào thêm một lần, nhân số khúc tuyến tính mà mạng ReLU vẽ "
                "được.",
        "formula": "f(x) = f_L(... f_2(f_1(x)))\nđầu vào 1 chiều: một tầng ẩn m đơn vị ReLU vẽ tối đa m + 1 khúc;\n"
                   "hàm lều t(x) = 2 relu(x) - 4 relu(x - 0.5) hợp L lần vẽ\n"
                   "2^L khúc tuyến tính chỉ với 2 đơn vị mỗi tầng",
        "when": "Khi mục tiêu có cấu trúc lặp lại hoặc xây chồng lên nhau (xoắn ốc, ảnh, phân cấp). Với bài toán "
                "dữ liệu bảng nhỏ, một đến ba tầng ẩn thường là đủ.",
        "pitfall": "Mạng càng sâu càng khó huấn luyện: gradient biến mất hoặc bùng nổ qua nhiều tầng, nên cần khởi "
                   "tạo tốt (Xavier/He), chuẩn hoá, và thường nhiều epoch hơn. Thêm độ sâu cho một bài toán đơn "
                   "giản chỉ thêm tham số để quá khớp.",
        "config": "Trên bài xoắn ốc, ba tầng 8 đơn vị ReLU (195 tham số) đạt mất mát kiểm định khoảng 0.01; một "
                  "tầng 24 đơn vị (147 tham số) dừng quanh 0.07, và ngay cả 64 đơn vị (387 tham số) cũng chỉ quanh "
                  "0.04. Chuẩn hoá theo nhóm được tắt để so sánh các mạng trơn.",
    },
    "l_layer": {
        "title": "mạng L tầng: ký hiệu, kích thước và cache",
        "what": "nnctl viết lan truyền xuôi với mỗi hàng là một mẫu: một lô X có n hàng và n_0 cột. Tầng l nhân "
                "các kích hoạt của tầng trước với W_l, cộng b_l, rồi áp dụng hàm kích hoạt. Lan truyền xuôi giữ "
                "một cache cho mỗi tầng (A_prev và Z, cùng trạng thái của chuẩn hoá và dropout), vì lan truyền "
                "ngược cần đúng những giá trị ấy.",
        "formula": "A_0 = X                                    (n, n_0)\nZ_l = A_{l-1} @ W_l + b_l   W_l "
                   "(n_{l-1}, n_l), b_l (n_l,)\nA_l = g_l(Z_l)                             (n, n_l)\n"
                   "cache_l = (A_{l-1}, Z_l)     khoá trong weights.npz: W1, b1, ..., WL, bL",
        "when": "Mỗi khi tự viết hay đọc một MLP, hãy kiểm tra kích thước từng tầng: W_l có số hàng bằng số đầu "
                "vào của tầng (fan_in) và số cột bằng số đơn vị (fan_out).",
        "pitfall": "Nhiều giáo trình đặt mẫu theo cột (Z = W A + b, W có kích thước (n_l, n_{l-1})); nnctl, mã "
                   "NumPy và dữ liệu của PyTorch đặt mẫu theo hàng, nên mọi ma trận đều bị chuyển vị. Trộn hai quy "
                   "ước sẽ gây lỗi kích thước, hoặc tệ hơn là sai âm thầm khi ma trận tình cờ vuông. b được lan "
                   "truyền (broadcast) qua các hàng, mỗi đơn vị một giá trị.",
        "config": "gradcheck liệt kê mọi tensor tham số cùng kích thước của nó: với moons (2 đầu vào, hidden "
                  "[16, 16], một đơn vị đầu ra), W1 là 2x16, W2 là 16x16, W3 là 16x1, và mỗi b có một phần tử cho "
                  "mỗi đơn vị.",
    },
    "backprop": {
        "title": "lan truyền ngược: quy tắc dây chuyền trên đồ thị tính toán",
        "what": "Lan truyền ngược tính gradient của hàm mất mát theo mọi trọng số trong một lượt đi ngược. Lan "
                "truyền xuôi là một đồ thị gồm các phép toán đơn giản; quy tắc dây chuyền nói rằng gradient tại "
                "một nút bằng gradient đến từ phía trên nhân với đạo hàm cục bộ của nút. Đi từ hàm mất mát ngược "
                "về đầu vào, mỗi gradient trung gian chỉ cần tính một lần rồi dùng lại, nên tính toàn bộ gradient "
                "chỉ tốn cỡ hai lần lan truyền xuôi.",
        "formula": "quy tắc dây chuyền: dJ/dx = dJ/dy * dy/dx\nmỗi tầng, từ l = L xuống 1 (hàng là mẫu):\n"
                   "  dZ_l = dA_l * g'(Z_l)      (dZ_L = (A_L - Y) / n với softmax hoặc sigmoid\n"
                   "                              đi cùng entropy chéo)\n"
                   "  dW_l = A_{l-1}.T @ dZ_l,   db_l = tổng dZ_l theo các hàng\n  dA_{l-1} = dZ_l @ W_l.T\n"
                   "ví dụ tính tay: x = 2, w = 3, b = 1, y = 5, J = (a - y)^2 / 2, a = relu(z)\n"
                   "  z = 7, a = 7, J = 2;  dJ/da = 2, dJ/dz = 2, dJ/dw = 2 * x = 4, dJ/db = 2",
        "when": "Mỗi lần huấn luyện mạng bằng hạ gradient: đó là cách nnctl tính mọi gradient. Hiểu nó giúp bạn "
                "đoán trước khi nào gradient biến mất hay bùng nổ, và mỗi tầng cần giữ gì trong cache.",
        "pitfall": "Một lỗi trong công thức lan truyền ngược không làm chương trình dừng: việc huấn luyện chỉ kém "
                   "đi. Hãy kiểm tra lan truyền ngược tự viết bằng sai phân hữu hạn. Các cache tốn bộ nhớ tỉ lệ với "
                   "kích thước lô nhân độ rộng của mọi tầng.",
        "config": "gradcheck xê dịch từng tham số 1e-6, đo mức thay đổi của hàm mất mát và so với gradient của "
                  "lan truyền ngược, từng tensor một (bằng float64); kết quả đạt khi tất cả khớp đến 1e-5. Lệnh thứ "
                  "hai kiểm tra cả lan truyền ngược qua chuẩn hoá theo lô và dropout.",
    },
    "vanishing_gradients": {
        "title": "gradient biến mất và gradient bùng nổ",
        "what": "Trên đường đi xuống, gradient bị nhân với trọng số và đạo hàm hàm kích hoạt của từng tầng. Nếu "
                "các thừa số ấy phần lớn nhỏ hơn 1, tích co lại theo cấp số nhân và các tầng đầu hầu như không "
                "học (gradient biến mất); nếu chúng lớn hơn 1, tích phình ra và việc huấn luyện vỡ tung (gradient "
                "bùng nổ). nnctl theo dõi tỉ số giữa chuẩn gradient của tầng đầu và tầng cuối.",
        "formula": "dA_{l-1} = (dA_l * g'(Z_l)) @ W_l.T\n|dA_1| ~ |dA_L| * prod_l (|W_l| * |g'(Z_l)|)\n"
                   "sigmoid: g' <= 0.25, nên 10 tầng cho thừa số không quá 0.25^10 ~ 1e-6",
        "when": "Hãy nghi ngờ nó ở mạng sâu, với sigmoid hoặc tanh, với thang khởi tạo quá nhỏ hoặc quá lớn, và "
                "khi trọng số các tầng đầu gần như không đổi trong khi tầng cuối vẫn thay đổi.",
        "pitfall": "Mất mát huấn luyện giảm chưa chắc đã loại trừ được nó: các tầng cuối có thể khớp dữ liệu trong "
                   "khi các tầng đầu vẫn ngẫu nhiên. Cách chữa nhắm vào các thừa số: hàm kích hoạt họ ReLU với khởi "
                   "tạo He, Xavier cho tanh, các tầng chuẩn hoá, bớt tầng, và cắt gradient để chống bùng nổ.",
        "config": "Năm tầng sigmoid với SGD thuần dừng ở mức đoán mò trên moons. nnctl inspect cho thấy chuẩn "
                  "gradient giảm dần qua từng tầng về phía tầng 1 (nhỏ hơn tầng đầu ra khoảng 100 lần), trong khi "
                  "cấu hình relu học được chỉ sau vài epoch.",
    },
    "mse": {
        "title": "sai số bình phương trung bình (MSE)",
        "what": "Sai số bình phương trung bình lấy trung bình bình phương hiệu giữa dự đoán và mục tiêu. Đây là hàm "
                "mất mát tự nhiên cho hồi quy: cực tiểu hoá nó chính là ước lượng hợp lý cực đại khi nhiễu có "
                "phân phối Gauss, và gradient của nó đơn giản là sai số.",
        "formula": "J = (1 / N) * sum (y_hat - y)^2   (trung bình trên cả N phần tử, như torch)\n"
                   "dJ/dy_hat = 2 * (y_hat - y) / N",
        "when": "Hồi quy với tầng đầu ra đồng nhất: lựa chọn tự động của nnctl cho mục tiêu là số. nnctl chuẩn hoá "
                "mục tiêu trên các hàng huấn luyện (target_scale: auto), nên hàm mất mát tính theo đơn vị độ lệch "
                "chuẩn, còn r2 và mae tính theo đơn vị gốc.",
        "pitfall": "Bình phương làm sai số lớn lấn át: vài điểm ngoại lai kéo lệch cả đường khớp; mae hoặc huber "
                   "bền vững hơn. Với bài toán phân loại, mse trên đầu ra sigmoid học chậm khi đơn vị đã bão hoà mà "
                   "lại sai (gradient mang thêm thừa số sigmoid'); entropy chéo thì không bị vậy.",
        "config": "diabetes là một bài hồi quy nhỏ, nhiều nhiễu, huấn luyện với loss: mse; lệnh thứ hai huấn luyện "
                  "nó với huber, hàm xử lý tuyến tính các sai số lớn hơn 1. So sánh hai lần chạy bằng nnctl compare.",
    },
    "cross_entropy": {
        "title": "entropy chéo (log loss)",
        "what": "Entropy chéo đo xác suất mà mô hình dành cho lớp đúng: lấy âm logarit của xác suất ấy rồi lấy "
                "trung bình trên các hàng. Một câu trả lời đúng và tự tin gần như không tốn gì, một câu trả lời "
                "sai mà tự tin thì tốn rất nhiều. Đi cùng đầu ra softmax hoặc sigmoid, gradient của nó chỉ là dự "
                "đoán trừ mục tiêu.",
        "formula": "nhiều lớp:  J = -(1 / n) * sum_i sum_k Y_ik * log(A_ik)\n"
                   "nhị phân:   J = -(1 / n) * sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]\n"
                   "dJ/dZ = (A - Y) / n\nmô hình chưa huấn luyện với C lớp: J vào khoảng ln C",
        "when": "Mọi bài toán phân loại: nnctl dùng softmax + cross_entropy khi có nhiều lớp và sigmoid + bce khi "
                "có hai lớp.",
        "pitfall": "log(0) là vô cùng, nên phải tính từ điểm số Z (log-sum-exp) chứ không bao giờ từ xác suất đã "
                   "bị làm tròn; nnctl làm đúng như vậy. Các hàng gán nhãn sai có mất mát rất lớn và kéo mô hình "
                   "mạnh. Mất mát ban đầu cao hơn ln C nhiều nghĩa là mạng khởi đầu bằng dự đoán sai mà tự tin "
                   "(BAD_INIT_LOSS).",
        "config": "iris có ba lớp, nên mất mát của mạng chưa huấn luyện vào cỡ ln 3 = 1.10 (metrics.csv ghi 1.35, "
                  "trung bình trong epoch đầu) và huấn luyện đưa nó xuống khoảng 0.02. loss: auto chọn đúng hàm "
                  "này; train.loss ghi tên nó một cách tường minh.",
    },
}
